import { randomUUID } from 'node:crypto';
import { PalisadeError, type Principal } from '@palisade/contracts';
import type { AuditEvents, Transactions } from '../audit.events';
import type { AuditKafka } from '../ingest/audit-kafka';
import { endOffsets, type TopicSettings } from '../ingest/audit-topic';
import { blockedHostProblem } from './feed-destination';
import type { FeedDeliveryService } from './feed-delivery.service';
import { clientKeyAad, tokenAad } from './feed-secrets';
import { destinationOf, feedView, type FeedView } from './feed-view';
import { feedsTenantOf, newFeedTenant, requireBacklogRead } from './feeds.access';
import type { CreateFeed } from './feeds.dto';
import type { Feed, FeedCursor, FeedsRepository, HecSettings, SyslogSettings } from './feeds.repository';

export interface FeedPartitionStatus {
  topic: string;
  partition: number;
  nextOffset: number;
  endOffset: number | null;
  lagOffsets: number | null;
  updatedAt: string | null;
}

/**
 * SIEM feeds per tenant (README "SIEM feeds"): create, list, status, pause/resume,
 * delete. Scope audit:admin (tenant admin: own tenant; platform principal: any).
 * Another tenant's feed is a 404. Every change is an audited event, without the token,
 * committed in the change's transaction.
 */
export class FeedsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly repository: Pick<FeedsRepository, 'insert' | 'get' | 'list' | 'markDeleted' | 'setPaused' | 'cursorsOf'>,
    private readonly events: Pick<AuditEvents, 'recordWith'>,
    private readonly delivery: Pick<FeedDeliveryService, 'release' | 'wrapSecret'>,
    private readonly kafka: Pick<AuditKafka, 'admin'>,
    private readonly settings: Pick<TopicSettings, 'topic' | 'checkpointTopic'>,
    /** AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS */
    private readonly allowInternalDestinations: boolean,
  ) {}

  async create(principal: Principal, input: CreateFeed): Promise<FeedView> {
    if (!this.allowInternalDestinations) {
      const [field, problem] = input.kind === 'splunk-hec' ? ['url', blockedHostProblem(new URL(input.url).hostname)] : ['host', blockedHostProblem(input.host)];
      if (problem) throw new PalisadeError('validation', `body ${field}: not an allowed feed destination (${problem})`);
    }
    const tenantId = newFeedTenant(principal, input.tenantId);
    requireBacklogRead(principal, tenantId, input.start);
    const id = randomUUID();
    const settings: HecSettings | SyslogSettings =
      input.kind === 'splunk-hec'
        ? { url: input.url.replace(/\/+$/, ''), index: input.index, sourcetype: input.sourcetype, caPem: input.caPem }
        : { host: input.host, port: input.port, caPem: input.caPem, appName: input.appName, hostname: input.hostname, clientCertPem: input.clientCertPem };
    const wrappedToken = input.kind === 'splunk-hec' ? this.delivery.wrapSecret(input.token, tokenAad(id)) : null;
    const wrappedClientKey = input.kind === 'syslog' && input.clientKeyPem ? this.delivery.wrapSecret(input.clientKeyPem, clientKeyAad(id)) : null;
    const start: Array<{ topic: string; partition: number; offset: bigint }> = [];
    if (input.start === 'end') {
      const { topic, checkpointTopic } = this.settings;
      for (const t of [topic, checkpointTopic]) {
        for (const [partition, offset] of await endOffsets(this.kafka.admin, t)) start.push({ topic: t, partition, offset });
      }
    }
    const row = { id, tenantId, kind: input.kind, format: input.format, settings, wrappedToken, wrappedClientKey };
    const destination = input.kind === 'splunk-hec' ? (settings as HecSettings).url : `${input.host}:${input.port}`;
    await this.events.recordWith(principal, 'audit.feed.created', { feedId: id, feedTenantId: tenantId, kind: input.kind, format: input.format, destination, start: input.start }, (tx) =>
      this.repository.insert(tx, row, start),
    );
    return feedView((await this.transactions.inTransaction((tx) => this.repository.get(tx, id)))!);
  }

  async list(principal: Principal): Promise<{ items: FeedView[] }> {
    const tenant = feedsTenantOf(principal);
    const feeds = await this.transactions.inTransaction((tx) => this.repository.list(tx, tenant));
    return { items: feeds.map(feedView) };
  }

  /** A feed and its delivery status: cursor and lag per topic partition. */
  async status(principal: Principal, id: string): Promise<FeedView & { cursors: FeedPartitionStatus[] }> {
    const feed = await this.load(principal, id);
    const cursors = await this.transactions.inTransaction((tx) => this.repository.cursorsOf(tx, feed.id));
    const at = new Map<string, FeedCursor>(cursors.map((c) => [`${c.topic}/${c.partition}`, c]));
    const partitions: FeedPartitionStatus[] = [];
    for (const topic of [this.settings.topic, this.settings.checkpointTopic]) {
      // Kafka away: the cursors still show, without end offsets and lag.
      const ends = await endOffsets(this.kafka.admin, topic).catch(() => undefined);
      const known = ends ?? new Map(cursors.filter((c) => c.topic === topic).map((c) => [c.partition, undefined]));
      for (const [partition, end] of known) {
        const cursor = at.get(`${topic}/${partition}`);
        const next = cursor?.nextOffset ?? 0n;
        // Offsets, not records: other tenants' records and transaction markers count too.
        const lag = end === undefined ? null : Number(end > next ? end - next : 0n);
        partitions.push({ topic, partition, nextOffset: Number(next), endOffset: end === undefined ? null : Number(end), lagOffsets: lag, updatedAt: cursor?.updatedAt ?? null });
      }
    }
    return { ...feedView(feed), cursors: partitions };
  }

  /** Delete a feed: delivery has stopped when this returns (on the delivering instance; elsewhere within a second). */
  async remove(principal: Principal, id: string): Promise<{ id: string; deleted: true; eventId: string }> {
    const feed = await this.load(principal, id);
    const eventId = await this.events.recordWith(principal, 'audit.feed.deleted', { feedId: feed.id, feedTenantId: feed.tenantId, kind: feed.kind, destination: destinationOf(feed) }, (tx) =>
      this.repository.markDeleted(tx, feed.id),
    );
    await this.delivery.release(feed.id);
    return { id: feed.id, deleted: true, eventId };
  }

  async setPaused(principal: Principal, id: string, paused: boolean): Promise<FeedView> {
    const feed = await this.load(principal, id);
    await this.events.recordWith(principal, paused ? 'audit.feed.paused' : 'audit.feed.resumed', { feedId: feed.id, feedTenantId: feed.tenantId }, (tx) =>
      this.repository.setPaused(tx, feed.id, paused),
    );
    if (paused) await this.delivery.release(feed.id);
    return feedView({ ...feed, paused });
  }

  /** The feed, if the caller may see it: another tenant's does not exist for it. */
  private async load(principal: Principal, id: string): Promise<Feed> {
    const tenant = feedsTenantOf(principal);
    const feed = await this.transactions.inTransaction((tx) => this.repository.get(tx, id, tenant));
    if (!feed) throw new PalisadeError('not_found', `feed ${id} not found`);
    return feed;
  }
}
