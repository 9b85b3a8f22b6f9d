import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import { findPhoneNumbersInText, type CountryCode } from 'libphonenumber-js';
import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import { KeywordIndex } from './keywords';
import { SECRET_RULES, type SecretRule } from './secret-rules';

/** What the detector finds. `secret` covers API keys, tokens, JWTs, private keys and connection strings. */
export type EntityType = 'email' | 'phone' | 'ip' | 'card' | 'iban' | 'us_ssn' | 'cn_resident_id' | 'uk_nino' | 'date_of_birth' | 'secret';
export const ENTITY_TYPES: readonly EntityType[] = ['secret', 'email', 'card', 'iban', 'us_ssn', 'cn_resident_id', 'uk_nino', 'date_of_birth', 'ip', 'phone'];

export interface Entity {
  type: EntityType;
  start: number;
  end: number;
  /** For secrets: the rule that found it. */
  rule?: string;
}

export interface DetectorOptions {
  /** Region for numbers written without +country (libphonenumber-js). */
  defaultPhoneRegion?: CountryCode;
}

/** Luhn checksum (cards). */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const CN_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CN_CHECK = '10X98765432';

/** Chinese resident identity number (GB 11643): 6-digit area, birth date, sequence, ISO 7064 MOD 11-2 check character. */
export function validChineseResidentId(id: string): boolean {
  if (!/^[1-9]\d{16}[\dXx]$/.test(id)) return false;
  const y = Number(id.slice(6, 10));
  const m = Number(id.slice(10, 12));
  const d = Number(id.slice(12, 14));
  const date = new Date(Date.UTC(y, m - 1, d));
  if (y < 1900 || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (id.charCodeAt(i) - 48) * CN_WEIGHTS[i];
  return CN_CHECK[sum % 11] === id[17].toUpperCase();
}

/** E-mail: from each `@`, the local part to the left (at most 64 characters) and the domain to the right (anchored), so no scan backtracks over the whole text. */
const EMAIL_LOCAL = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]/;
const EMAIL_DOMAIN = /[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b/y;

function* emails(text: string): Generator<[number, number]> {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && at - start < 64 && EMAIL_LOCAL.test(text[start - 1])) start--;
    while (start < at && text[start] === '.') start++;
    if (start === at) continue;
    EMAIL_DOMAIN.lastIndex = at + 1;
    const domain = EMAIL_DOMAIN.exec(text);
    if (domain) yield [start, at + 1 + domain[0].length];
  }
}
const CARD = /(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g;
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g;
const US_SSN = /(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])/g;
const CN_ID = /(?<![\dA-Za-z])[1-9]\d{16}[\dXx](?![\dA-Za-z])/g;
/** Where a phone number may be (digits with separators): libphonenumber-js then reads only these windows, not the whole text. */
const PHONE_CANDIDATE = /(?<![\w+])(?:\+|\(\d)?[\d ().-]{6,24}\d(?!\w)/g;
/** UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; second not O; never BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D. */
const UK_NINO = /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])/g;
const MONTHS = 'jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?';
/**
 * A date of birth is a date in its context: after "born", "date of birth", "DOB", "birthday", "geboren",
 * "né(e) le", "出生日期"… (at most 24 characters between), in the usual numeric and written forms.
 * Only the date is masked; a date without such a context (an order, a release) is not personal.
 */
const DOB = new RegExp(
  `(?:\\b(?:date of birth|birth ?date|birthday|d\\.?o\\.?b\\.?|born(?: on)?|geburtsdatum|geboren(?: am)?|date de naissance|n[ée]e? le|fecha de nacimiento|nacid[oa] el)|出生日期|出生于|生日)[^\\n\\d]{0,24}?` +
    `((?:\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2})|(?:\\d{1,2}[-/.]\\d{1,2}[-/.](?:\\d{4}|\\d{2}))|(?:\\d{1,2}(?:st|nd|rd|th)?(?: of)? (?:${MONTHS})\\.?,? \\d{4})|(?:(?:${MONTHS})\\.? \\d{1,2}(?:st|nd|rd|th)?,? \\d{4})|(?:\\d{4}年\\d{1,2}月\\d{1,2}日))(?![\\d])`,
  'gi',
);
const MONTH_INDEX = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** A written date that exists and is a plausible birth date (1900 up to today). */
export function plausibleBirthDate(text: string, today = new Date()): boolean {
  const numbers = text.match(/\d+/g)?.map(Number) ?? [];
  const month = MONTH_INDEX.findIndex((m) => text.toLowerCase().includes(m));
  let y: number, m: number, d: number;
  if (month >= 0) [y, m, d] = [numbers.find((n) => n > 31) ?? -1, month + 1, numbers.find((n) => n <= 31) ?? -1];
  else if (/^\d{4}/.test(text) || text.includes('年')) [y, m, d] = numbers;
  else {
    const [a, b, c] = numbers;
    y = c < 100 ? c + (c + 2000 > today.getUTCFullYear() ? 1900 : 2000) : c;
    // day first (most of the world) unless that is no date and month first is (US)
    [d, m] = a > 12 ? [a, b] : b > 12 ? [b, a] : [a, b];
  }
  const date = new Date(Date.UTC(y, m - 1, d));
  return y >= 1900 && date.getUTCMonth() === m - 1 && date.getUTCDate() === d && date.getTime() <= today.getTime();
}
const IPV4 = /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])/g;
const IPV6_CANDIDATE = /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])/g;

interface CompiledRule {
  rule: SecretRule;
  re: RE2JS;
}

/**
 * Finds personal data and secrets in text: regular expressions propose, validators
 * decide (Luhn for cards, mod-97 for IBANs via ibantools, the GB 11643 checksum for
 * Chinese resident ids, libphonenumber-js for phones, the SSA's excluded ranges for US
 * SSNs, re2js for the secret rules). Spans never overlap: the first type in
 * `ENTITY_TYPES` order wins a contested span (a card number is not also a phone).
 */
export class PiiDetector {
  private readonly rules: CompiledRule[];
  private readonly region: CountryCode;
  /** Every rule's keywords in one pattern: one pass over the text says which rules may match. */
  readonly keywords: KeywordIndex;

  constructor(options: DetectorOptions = {}, rules: readonly SecretRule[] = SECRET_RULES) {
    this.rules = rules.map((rule) => ({ rule, re: RE2JS.compile(rule.regex) }));
    this.region = options.defaultPhoneRegion ?? 'US';
    this.keywords = new KeywordIndex(rules.flatMap((r) => r.keywords));
  }

  /** `present`: the keywords in `text`, from an index holding at least this detector's (else its own pass). */
  detect(text: string, present: ReadonlySet<string> = this.keywords.present(text)): Entity[] {
    const found: Entity[] = [];
    const taken = (start: number, end: number) => found.some((e) => start < e.end && end > e.start);
    const add = (type: EntityType, start: number, end: number, rule?: string) => {
      if (end > start && !taken(start, end)) found.push(rule ? { type, start, end, rule } : { type, start, end });
    };
    for (const { rule, re } of this.rules) {
      if (present.size === 0) break;
      if (!rule.keywords.some((k) => present.has(k))) continue;
      const m = re.matcher(text);
      while (m.find()) {
        // a rule with a capture group masks the value only (`password = <value>`)
        if (m.groupCount() > 0 && m.group(1) !== null) add('secret', m.start(1), m.end(1), rule.id);
        else add('secret', m.start(), m.end(), rule.id);
      }
    }
    for (const [start, end] of emails(text)) add('email', start, end);
    if (/\d/.test(text)) {
      // an IBAN first: its digits may hold a run that passes Luhn, which must not claim part of it
      for (const m of text.matchAll(IBAN)) {
        const iban = electronicFormatIBAN(m[0]);
        if (iban && isValidIBAN(iban)) add('iban', m.index, m.index + m[0].length);
      }
      for (const m of text.matchAll(CARD)) {
        const digits = m[0].replace(/[ -]/g, '');
        if (digits.length >= 13 && digits.length <= 19 && luhn(digits) && !/^(\d)\1+$/.test(digits)) add('card', m.index, m.index + m[0].length);
      }
      for (const m of text.matchAll(US_SSN)) add('us_ssn', m.index, m.index + m[0].length);
      for (const m of text.matchAll(CN_ID)) if (validChineseResidentId(m[0])) add('cn_resident_id', m.index, m.index + m[0].length);
      for (const m of text.matchAll(UK_NINO)) add('uk_nino', m.index, m.index + m[0].length);
      for (const m of text.matchAll(DOB)) {
        const start = m.index + m[0].length - m[1].length;
        if (plausibleBirthDate(m[1])) add('date_of_birth', start, start + m[1].length);
      }
      for (const m of text.matchAll(IPV4)) add('ip', m.index, m.index + m[0].length);
    }
    if (text.includes(':')) for (const m of text.matchAll(IPV6_CANDIDATE)) if (isIP(m[0]) === 6 && m[0].length > 2) add('ip', m.index, m.index + m[0].length);
    if (/\d{3}/.test(text)) {
      for (const c of text.matchAll(PHONE_CANDIDATE)) {
        // only the parts of the window no other entity holds (a card number is not read again as phones)
        let from = c.index;
        const end = c.index + c[0].length;
        for (const e of [...found.filter((f) => f.start < end && f.end > from).sort((a, b) => a.start - b.start), { start: end, end }]) {
          if (e.start - from >= 7) {
            const part = text.slice(from, e.start);
            for (const p of findPhoneNumbersInText(part, this.region)) if (p.number.isValid()) add('phone', from + p.startsAt, from + p.endsAt);
          }
          from = Math.max(from, e.end);
        }
      }
    }
    return found.sort((a, b) => a.start - b.start);
  }
}
