/** Associated data of a wrapped HEC token or client key: it unwraps only for the feed (and use) it was stored with. */
export const tokenAad = (feedId: string) => `palisade-audit-feed-token/${feedId}`;
export const clientKeyAad = (feedId: string) => `palisade-audit-feed-client-key/${feedId}`;
