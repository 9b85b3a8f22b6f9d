/**
 * The server name (SNI) of a TLS ClientHello record (pure): the name, `undefined` when the
 * hello has no server_name extension, `null` when the bytes are not a ClientHello.
 */
export function sniOf(record: Buffer): string | undefined | null {
  try {
    if (record[0] !== 0x16 || record.length < 9) return null; // handshake record
    let p = 5;
    if (record[p] !== 0x01) return null; // client_hello
    p += 4; // type + length
    p += 2 + 32; // version + random
    p += 1 + record[p]!; // session id
    p += 2 + record.readUInt16BE(p); // cipher suites
    p += 1 + record[p]!; // compression methods
    if (p + 2 > record.length) return undefined;
    const end = p + 2 + record.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = record.readUInt16BE(p);
      const len = record.readUInt16BE(p + 2);
      p += 4;
      if (type === 0) {
        let q = p + 2; // server_name_list length
        while (q + 3 <= p + len) {
          const nameType = record[q]!;
          const nameLen = record.readUInt16BE(q + 1);
          if (nameType === 0) return record.subarray(q + 3, q + 3 + nameLen).toString('latin1');
          q += 3 + nameLen;
        }
        return null;
      }
      p += len;
    }
    return undefined;
  } catch {
    return null;
  }
}
