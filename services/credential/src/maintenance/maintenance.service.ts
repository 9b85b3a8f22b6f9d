import { PalisadeError } from '@palisade/contracts';
import type { Clock, CredentialSettings } from '../credential.settings';
import type { LeasesRepository } from '../leases/leases.repository';
import type { SecretsRepository } from '../secrets/secrets.repository';
import type { SecretsService } from '../secrets/secrets.service';

export interface MaintenanceDependencies {
  secrets: Pick<SecretsService, 'checkRotation' | 'retireVersion'>;
  lookups: Pick<SecretsRepository, 'rotationCandidates' | 'versionsToRetire'>;
  leases: Pick<LeasesRepository, 'purgeExpired'>;
  settings: Pick<CredentialSettings, 'overdueAfterDays'>;
  now: Clock;
}

export interface MaintenanceReport {
  notices: number;
  retired: number;
  leasesPurged: number;
}

const BATCH = 500;
/** Expired leases stay a while, so a late redemption hears 'expired' rather than 'not found'. */
const LEASE_PURGE_AFTER_MS = 10 * 60_000;

/** Due / overdue rotation notices, retirement of versions past their overlap, expired leases. */
export class MaintenanceService {
  constructor(private readonly d: MaintenanceDependencies) {}

  async maintain(): Promise<MaintenanceReport> {
    const now = this.d.now();
    let notices = 0;
    for (const c of await this.d.lookups.rotationCandidates(now, this.d.settings.overdueAfterDays, BATCH)) {
      notices += await this.d.secrets.checkRotation(c.tenantId, c.secretId, now);
    }
    let retired = 0;
    for (const v of await this.d.lookups.versionsToRetire(now, BATCH)) {
      await this.d.secrets.retireVersion(v.tenantId, v.secretId, v.version, now).then(
        () => retired++,
        (error: unknown) => {
          if (!(error instanceof PalisadeError)) throw error;
        },
      );
    }
    const leasesPurged = await this.d.leases.purgeExpired(new Date(now.getTime() - LEASE_PURGE_AFTER_MS));
    return { notices, retired, leasesPurged };
  }
}
