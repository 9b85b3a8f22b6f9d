import { randomUUID, X509Certificate } from 'node:crypto';
import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditEvents } from '../audit.events';
import { AuditRuntime } from '../ingest/audit-runtime';
import { endOffsets } from '../ingest/audit-topic';
import { parseInput } from '../validation';
import { feedsTenantOf, newFeedTenant, requireBacklogRead } from './feeds.access';
import { blockedHostProblem } from './feed-destination';
import { createFeedSchema, feedIdSchema } from './feeds.dto';
import type { Feed, FeedCursor, HecSettings, SyslogSettings } from './feeds.repository';
import { clientKeyAad, FeedRuntime, tokenAad } from './feed-runtime';

/** A feed as the API shows it: the HEC token never, only that one is set. */
export function feedView(feed: Feed) {
  const destination =
    feed.kind === 'splunk-hec'
      ? (({ url, index, sourcetype, caPem }: HecSettings) => ({ url, index: index ?? null, sourcetype: sourcetype ?? null, ca: caPem ? 'custom' : 'system', token: 'set (write-only)' }))(feed.settings as HecSettings)
      : (({ host, port, appName, hostname, caPem, clientCertPem }: SyslogSettings) => ({
          host,
          port,
          appName,
          hostname: hostname ?? null,
          ca: caPem ? 'custom' : 'system',
          // the certificate's subject only; its key is write-only
          clientCertificate: clientCertPem ? new X509Certificate(clientCertPem).subject.replace(/\n/g, ', ') : null,
        }))(feed.settings as SyslogSettings);
  const errorClass = feed.lastError ? feed.lastError.split(':')[0] : null;
  return {
    id: feed.id,
    tenantId: feed.tenantId,
    kind: feed.kind,
    format: feed.format,
    paused: feed.paused,
    createdAt: feed.createdAt,
    destination,
    lastDeliveredAt: feed.lastDeliveredAt,
    lastError: feed.lastError ? { class: errorClass, message: feed.lastError, at: feed.lastErrorAt } : null,
  };
}

function destinationOf(feed: Feed): string {
  return feed.kind === 'splunk-hec' ? (feed.settings as HecSettings).url : `${(feed.settings as SyslogSettings).host}:${(feed.settings as SyslogSettings).port}`;
}

/**
 * SIEM feeds per tenant (README "SIEM feeds"): create, list, status, pause/resume,
 * delete. Scope audit:admin (tenant admin: own tenant; platform principal: any).
 * Another tenant's feed is a 404. Every change is an audited event, without the token,
 * committed in the change's transaction.
 */
@ApiTags('audit feeds')
@Controller('v1/audit/feeds')
export class FeedsController {
  constructor(
    private readonly runtime: AuditRuntime,
    private readonly feeds: FeedRuntime,
    private readonly events: AuditEvents,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a SIEM feed: kind splunk-hec (https url, token: write-only) or syslog (RFC 5425 over TLS), format json or cef. Scope audit:admin.' })
  @ApiOkResponse({ description: 'the feed, token redacted' })
  async create(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const input = parseInput(createFeedSchema, body, 'body');
    if (!this.runtime.config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS) {
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
    const wrappedToken = input.kind === 'splunk-hec' ? this.feeds.wrapSecret(input.token, tokenAad(id)) : null;
    const wrappedClientKey = input.kind === 'syslog' && input.clientKeyPem ? this.feeds.wrapSecret(input.clientKeyPem, clientKeyAad(id)) : null;
    const start: Array<{ topic: string; partition: number; offset: bigint }> = [];
    if (input.start === 'end') {
      const { topic, checkpointTopic } = this.runtime.settings;
      for (const t of [topic, checkpointTopic]) {
        for (const [partition, offset] of await endOffsets(this.runtime.admin, t)) start.push({ topic: t, partition, offset });
      }
    }
    const row = { id, tenantId, kind: input.kind, format: input.format, settings, wrappedToken, wrappedClientKey };
    const destination = input.kind === 'splunk-hec' ? (settings as HecSettings).url : `${input.host}:${input.port}`;
    await this.events.recordWith(principal, 'audit.feed.created', { feedId: id, feedTenantId: tenantId, kind: input.kind, format: input.format, destination, start: input.start }, (tx) =>
      this.feeds.repository.insert(tx, row, start),
    );
    return feedView((await this.feeds.repository.get(this.runtime.db(), id))!);
  }

  @Get()
  @ApiOperation({ summary: "The caller's tenant's feeds (every tenant's for a platform principal), secrets redacted. Scope audit:admin." })
  async list(@CurrentPrincipal() principal: Principal) {
    const feeds = await this.feeds.repository.list(this.runtime.db(), feedsTenantOf(principal));
    return { items: feeds.map(feedView) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'A feed and its delivery status: cursor and lag per topic partition, last delivery, last error class. Scope audit:admin.' })
  async status(@CurrentPrincipal() principal: Principal, @Param('id') rawId: string) {
    const feed = await this.load(principal, rawId);
    const cursors = await this.feeds.repository.cursorsOf(this.runtime.db(), feed.id);
    const at = new Map<string, FeedCursor>(cursors.map((c) => [`${c.topic}/${c.partition}`, c]));
    const partitions = [];
    for (const topic of [this.runtime.settings.topic, this.runtime.settings.checkpointTopic]) {
      // Kafka away: the cursors still show, without end offsets and lag.
      const ends = await endOffsets(this.runtime.admin, topic).catch(() => undefined);
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

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete a feed: delivery has stopped when this answers (on the delivering instance; elsewhere within a second). Scope audit:admin.' })
  async remove(@CurrentPrincipal() principal: Principal, @Param('id') rawId: string) {
    const feed = await this.load(principal, rawId);
    const eventId = await this.events.recordWith(principal, 'audit.feed.deleted', { feedId: feed.id, feedTenantId: feed.tenantId, kind: feed.kind, destination: destinationOf(feed) }, (tx) =>
      this.feeds.repository.markDeleted(tx, feed.id),
    );
    await this.feeds.release(feed.id);
    return { id: feed.id, deleted: true, eventId };
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause a feed: delivery stops, the cursor stays; resume continues from it. Scope audit:admin.' })
  pause(@CurrentPrincipal() principal: Principal, @Param('id') rawId: string) {
    return this.setPaused(principal, rawId, true);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a paused feed from its cursor. Scope audit:admin.' })
  resume(@CurrentPrincipal() principal: Principal, @Param('id') rawId: string) {
    return this.setPaused(principal, rawId, false);
  }

  private async setPaused(principal: Principal, rawId: string, paused: boolean) {
    const feed = await this.load(principal, rawId);
    await this.events.recordWith(principal, paused ? 'audit.feed.paused' : 'audit.feed.resumed', { feedId: feed.id, feedTenantId: feed.tenantId }, (tx) =>
      this.feeds.repository.setPaused(tx, feed.id, paused),
    );
    if (paused) await this.feeds.release(feed.id);
    return feedView({ ...feed, paused });
  }

  /** The feed, if the caller may see it: another tenant's does not exist for it. */
  private async load(principal: Principal, rawId: string): Promise<Feed> {
    const tenant = feedsTenantOf(principal);
    const id = parseInput(feedIdSchema, rawId, 'path id');
    const feed = await this.feeds.repository.get(this.runtime.db(), id, tenant);
    if (!feed) throw new PalisadeError('not_found', `feed ${id} not found`);
    return feed;
  }
}
