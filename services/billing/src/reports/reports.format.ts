import { csvOf } from '@palisade/service-kit';
import type { UsageRow } from './reports.repository';

/** µ-units as a decimal amount of the currency, exactly (no float): 1234567 → "1.234567". */
export function money(micros: bigint): string {
  const sign = micros < 0n ? '-' : '';
  const v = micros < 0n ? -micros : micros;
  return `${sign}${v / 1_000_000n}.${(v % 1_000_000n).toString().padStart(6, '0')}`;
}

export function usageJson(rows: readonly UsageRow[]) {
  return rows.map((r) => ({
    day: r.day,
    teamId: r.teamId,
    agentId: r.agentId,
    model: r.model,
    requests: r.requests,
    postedMicros: r.postedMicros.toString(),
    actualMicros: r.actualMicros.toString(),
    overrunMicros: r.overrunMicros.toString(),
  }));
}

export function usageCsv(rows: readonly UsageRow[]): string {
  return csvOf(
    [
      ['day', 'team_id', 'agent_id', 'model', 'requests', 'posted_micros', 'actual_micros', 'overrun_micros'],
      ...rows.map((r) => [r.day, r.teamId, r.agentId, r.model, r.requests, r.postedMicros.toString(), r.actualMicros.toString(), r.overrunMicros.toString()]),
    ],
    { crlf: true },
  );
}

export const FOCUS_COLUMNS = [
  'BilledCost',
  'EffectiveCost',
  'BillingCurrency',
  'ChargePeriodStart',
  'ChargePeriodEnd',
  'ChargeCategory',
  'ConsumedQuantity',
  'ConsumedUnit',
  'SkuId',
  'SubAccountId',
  'ResourceId',
  'Tags',
] as const;

/**
 * FinOps FOCUS rows, one per day, team, agent and model: BilledCost = EffectiveCost =
 * what was posted (the ledger's cost; no discounts or credits apply in Palisade),
 * ChargePeriod = the day in the report's time zone, ConsumedQuantity = requests,
 * SkuId = model, SubAccountId = team, ResourceId = agent, Tags = {"x_Overrun": µ-units}.
 */
export function focusCsv(rows: readonly UsageRow[], currency: string, dayStart: (day: string) => { start: Date; end: Date }): string {
  return csvOf(
    [
      FOCUS_COLUMNS,
      ...rows.map((r) => {
      const { start, end } = dayStart(r.day!);
      return [
        money(r.postedMicros),
        money(r.postedMicros),
        currency,
        start.toISOString(),
        end.toISOString(),
        'Usage',
        r.requests,
        'Requests',
        r.model ?? 'unknown',
        r.teamId,
        r.agentId,
        JSON.stringify({ x_OverrunMicros: r.overrunMicros.toString() }),
      ];
      }),
    ],
    { crlf: true },
  );
}
