import { X509Certificate } from 'node:crypto';
import type { Feed, HecSettings, SyslogSettings } from './feeds.repository';

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

export type FeedView = ReturnType<typeof feedView>;

/** Where a feed delivers, as its audited events name it. */
export function destinationOf(feed: Feed): string {
  return feed.kind === 'splunk-hec' ? (feed.settings as HecSettings).url : `${(feed.settings as SyslogSettings).host}:${(feed.settings as SyslogSettings).port}`;
}
