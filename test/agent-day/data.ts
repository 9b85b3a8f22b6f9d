import { randomBytes, randomInt } from 'node:crypto';

/**
 * The secrets and personal data one agent's day uses, fresh for each run: a marker search
 * (step 11) can then tell this run's values from anything else in shared logs, streams and
 * topics. The IBAN's check digits (ISO 13616, mod 97) and the card's Luhn digit are real,
 * so the router's detectors recognise them as what they are.
 */
export interface DayData {
  suffix: string;
  /** Every person's password in the day's tenants. */
  password: string;
  /** The Gerrit token the vault keeps and the egress proxy injects. */
  gerritToken: string;
  /** A customer's e-mail address, IBAN and card number, in the agent's prompt. */
  email: string;
  iban: string;
  card: string;
  /** Alice's own e-mail address (her account in auth). */
  aliceEmail: string;
}

function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(10));
  return s;
}

/** A German IBAN (bank code and account number random) with valid check digits, in groups of four. */
export function randomIban(): string {
  const bban = digits(18);
  // move "DE00" to the end, letters as numbers (D=13, E=14), mod 97
  const rearranged = `${bban}131400`;
  let rest = 0;
  for (const c of rearranged) rest = (rest * 10 + Number(c)) % 97;
  const check = String(98 - rest).padStart(2, '0');
  return `DE${check}${bban}`.replace(/(.{4})/g, '$1 ').trim();
}

/** A 16-digit Visa-shaped card number with a valid Luhn digit, in groups of four. */
export function randomCard(): string {
  const body = `4${digits(14)}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    // from the right, the check digit's neighbour is doubled first
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`.replace(/(.{4})/g, '$1 ').trim();
}

export function dayData(suffix = randomBytes(3).toString('hex')): DayData {
  return {
    suffix,
    password: `Day-${randomBytes(9).toString('base64url')}-7x!`,
    gerritToken: `gerrit-secret-${randomBytes(12).toString('hex')}`,
    email: `erika.mustermann.${suffix}@example.com`,
    iban: randomIban(),
    card: randomCard(),
    aliceEmail: `alice.${suffix}@acme.example`,
  };
}

/** What a marker search looks for: each value by name, in the forms it could be written (with and without spaces). */
export function markersOf(data: DayData, more: Record<string, string | undefined> = {}): Array<{ name: string; value: string; kind: 'secret' | 'personal' }> {
  const markers: Array<{ name: string; value: string; kind: 'secret' | 'personal' }> = [
    { name: 'gerrit token', value: data.gerritToken, kind: 'secret' },
    { name: 'password', value: data.password, kind: 'secret' },
    { name: 'customer e-mail', value: data.email, kind: 'personal' },
    { name: 'IBAN', value: data.iban, kind: 'personal' },
    { name: 'IBAN', value: data.iban.replace(/ /g, ''), kind: 'personal' },
    { name: 'card number', value: data.card, kind: 'personal' },
    { name: 'card number', value: data.card.replace(/ /g, ''), kind: 'personal' },
    { name: "alice's e-mail", value: data.aliceEmail, kind: 'personal' },
  ];
  for (const [name, value] of Object.entries(more)) if (value) markers.push({ name, value, kind: 'secret' });
  return markers;
}
