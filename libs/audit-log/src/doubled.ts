/** A typed array twice as long, `a`'s elements first: how the verifiers' per-record logs grow. */
export function doubled<T extends Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Float64Array<ArrayBuffer>>(a: T): T {
  const grown = new (a.constructor as new (length: number) => T)(a.length * 2);
  grown.set(a);
  return grown;
}
