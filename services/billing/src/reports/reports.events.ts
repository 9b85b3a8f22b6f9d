/** The reports context's published language: every export of usage data is an audited data export. */
export type UsageExported = {
  type: 'billing.usage.exported';
  data: { exportId: string; format: 'json' | 'csv' | 'focus'; from: string; to: string; groupBy: string[]; rows: number };
};
