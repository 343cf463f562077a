/**
 * Rows for PostgreSQL's binary COPY format (docs: "COPY — Binary Format"), limited to the column
 * types telemetry chunks use. Written by hand because the text format spends most of its time
 * turning every float into decimal digits and back (shortest round-trip printing in V8, parsing in
 * PostgreSQL): binary writes the 8 bytes as they are. Measured on the ingest path: see bench/.
 */

/** PostgreSQL type OIDs of array elements. */
const OID = { int2: 21, int8: 20, float8: 701, text: 25 } as const;

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z). */
const PG_EPOCH_MS = 946_684_800_000;

export const COPY_BINARY_HEADER = Buffer.concat([
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
  Buffer.alloc(8), // flags (no OIDs), header extension length 0
]);
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** A value of one column, typed for its binary encoding. */
export type BinaryField =
  | { readonly type: 'int4'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'timestamptz'; readonly ms: number }
  | { readonly type: 'int8[]'; readonly values: ArrayLike<number>; readonly index: readonly number[] }
  | {
      readonly type: 'float8[]';
      readonly values: ArrayLike<number | null>;
      readonly index: readonly number[];
    }
  | { readonly type: 'int2[]'; readonly values: ArrayLike<number>; readonly index: readonly number[] }
  | {
      readonly type: 'text[]';
      readonly values: readonly (Buffer | null)[];
      readonly index: readonly number[];
    }
  | { readonly type: 'null' };

const ARRAY_HEADER = 20; // ndim, has-null flag, element OID, dimension length, lower bound

function fieldSize(f: BinaryField): number {
  switch (f.type) {
    case 'int4':
      return 4;
    case 'bool':
      return 1;
    case 'timestamptz':
      return 8;
    case 'int8[]':
      return ARRAY_HEADER + f.index.length * 12;
    case 'int2[]':
      return ARRAY_HEADER + f.index.length * 6;
    case 'float8[]': {
      let size = ARRAY_HEADER;
      for (const i of f.index) size += f.values[i] === null ? 4 : 12;
      return size;
    }
    case 'text[]': {
      let size = ARRAY_HEADER;
      for (const i of f.index) size += 4 + (f.values[i]?.length ?? 0);
      return size;
    }
    case 'null':
      return -1;
  }
}

function writeArrayHeader(buf: Buffer, at: number, oid: number, n: number, hasNull: boolean): number {
  buf.writeInt32BE(1, at);
  buf.writeInt32BE(hasNull ? 1 : 0, at + 4);
  buf.writeInt32BE(oid, at + 8);
  buf.writeInt32BE(n, at + 12);
  buf.writeInt32BE(1, at + 16);
  return at + ARRAY_HEADER;
}

function writeField(buf: Buffer, at: number, f: BinaryField): number {
  switch (f.type) {
    case 'int4':
      return buf.writeInt32BE(f.value, at);
    case 'bool':
      return buf.writeUInt8(f.value ? 1 : 0, at);
    case 'timestamptz':
      return buf.writeBigInt64BE(BigInt(f.ms - PG_EPOCH_MS) * 1000n, at);
    case 'int8[]': {
      let p = writeArrayHeader(buf, at, OID.int8, f.index.length, false);
      for (const i of f.index) {
        p = buf.writeInt32BE(8, p);
        // Epoch milliseconds fit a double exactly; split into two 32-bit halves (no BigInt per value).
        const v = f.values[i]!;
        const hi = Math.floor(v / 4294967296);
        p = buf.writeInt32BE(hi, p);
        p = buf.writeUInt32BE(v - hi * 4294967296, p);
      }
      return p;
    }
    case 'int2[]': {
      let p = writeArrayHeader(buf, at, OID.int2, f.index.length, false);
      for (const i of f.index) {
        p = buf.writeInt32BE(2, p);
        p = buf.writeInt16BE(f.values[i]!, p);
      }
      return p;
    }
    case 'float8[]': {
      let hasNull = false;
      for (const i of f.index) if (f.values[i] === null) hasNull = true;
      let p = writeArrayHeader(buf, at, OID.float8, f.index.length, hasNull);
      for (const i of f.index) {
        const v = f.values[i];
        if (v === null || v === undefined) p = buf.writeInt32BE(-1, p);
        else {
          p = buf.writeInt32BE(8, p);
          p = buf.writeDoubleBE(v, p);
        }
      }
      return p;
    }
    case 'text[]': {
      let hasNull = false;
      for (const i of f.index) if (f.values[i] === null) hasNull = true;
      let p = writeArrayHeader(buf, at, OID.text, f.index.length, hasNull);
      for (const i of f.index) {
        const v = f.values[i];
        if (v === null || v === undefined) p = buf.writeInt32BE(-1, p);
        else {
          p = buf.writeInt32BE(v.length, p);
          p += v.copy(buf, p);
        }
      }
      return p;
    }
    case 'null':
      return at;
  }
}

/** One row (tuple) in binary COPY format. */
export function copyBinaryRow(fields: readonly BinaryField[]): Buffer {
  const sizes = fields.map(fieldSize);
  const total = 2 + sizes.reduce((n, s) => n + 4 + Math.max(s, 0), 0);
  const buf = Buffer.allocUnsafe(total);
  let p = buf.writeInt16BE(fields.length, 0);
  fields.forEach((f, k) => {
    p = buf.writeInt32BE(sizes[k]!, p);
    p = writeField(buf, p, f);
  });
  return buf;
}
