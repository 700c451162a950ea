/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw tensor bytes,
 * offsets counted from the end of the header. Checkpoints are one `model.safetensors` or shards listed in
 * `model.safetensors.index.json` (`weight_map: {tensor name: shard file}`). F32, F16 and BF16 tensors are
 * converted to Float32Array on the host.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
  /** The dtype stored on disk (F32, F16, BF16). */
  dtype: string;
}

/** A problem with a checkpoint file, naming the file (and the tensor or field when known). */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

/** IEEE half precision to float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Parse one safetensors file's bytes; `file` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, HostTensor> {
  if (bytes.length < 8) throw new CheckpointError(file, 'too short to be a safetensors file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength <= 0 || 8 + headerLength > bytes.length) {
    throw new CheckpointError(
      file,
      `header length ${headerLength} does not fit the file (${bytes.length} bytes)`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
      string,
      unknown
    >;
  } catch (error) {
    throw new CheckpointError(file, `header is not valid JSON (${(error as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const out = new Map<string, HostTensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = raw as Partial<HeaderEntry>;
    const width = BYTES[entry.dtype ?? ''];
    if (!width) {
      throw new CheckpointError(
        file,
        `tensor ${name} has dtype ${entry.dtype}; supported are F32, F16, BF16`,
      );
    }
    const shape = entry.shape ?? [];
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets ?? [Number.NaN, Number.NaN];
    if (!(begin >= 0 && end <= dataLength && end - begin === count * width)) {
      throw new CheckpointError(
        file,
        `tensor ${name} (${entry.dtype} [${shape.join(', ')}]) has data offsets [${begin}, ${end}] that do not fit its shape or the file (truncated?)`,
      );
    }
    const data = new Float32Array(count);
    const at = dataStart + begin;
    if (entry.dtype === 'F32') {
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(at + 4 * i, true);
    } else if (entry.dtype === 'F16') {
      for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(at + 2 * i, true));
    } else {
      // bfloat16 is the upper half of a float32.
      const widened = new Uint32Array(count);
      for (let i = 0; i < count; i++) widened[i] = view.getUint16(at + 2 * i, true) << 16;
      data.set(new Float32Array(widened.buffer));
    }
    out.set(name, { shape, data, dtype: entry.dtype as string });
  }
  return out;
}

async function readBytes(path: string, file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      file,
      code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? error})`,
    );
  }
}

/** Every tensor of a model folder: `model.safetensors.index.json` with its shards, or `model.safetensors`. */
export async function readCheckpointTensors(folder: string): Promise<Map<string, HostTensor>> {
  const indexFile = 'model.safetensors.index.json';
  let index: { weight_map?: Record<string, string> } | undefined;
  try {
    index = JSON.parse(await readFile(join(folder, indexFile), 'utf8')) as {
      weight_map?: Record<string, string>;
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CheckpointError(indexFile, `is not valid JSON (${(error as Error).message})`);
    }
  }
  if (!index)
    return parseSafetensors(
      await readBytes(join(folder, 'model.safetensors'), 'model.safetensors'),
      'model.safetensors',
    );
  const weightMap = index.weight_map;
  if (!weightMap || typeof weightMap !== 'object') throw new CheckpointError(indexFile, 'has no weight_map');
  const all = new Map<string, HostTensor>();
  for (const shard of [...new Set(Object.values(weightMap))].sort()) {
    const tensors = parseSafetensors(await readBytes(join(folder, shard), shard), shard);
    for (const [name, t] of tensors) all.set(name, t);
  }
  for (const [name, shard] of Object.entries(weightMap)) {
    if (!all.has(name)) throw new CheckpointError(shard, `tensor ${name} listed in ${indexFile} is missing`);
  }
  return all;
}

/** Bytes of a safetensors file holding `tensors` as F32, F16 or BF16 (names sorted, as the Python writer does). */
export function encodeSafetensors(
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
  dtype: 'F32' | 'F16' | 'BF16' = 'F32',
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const width = BYTES[dtype];
  const header: Record<string, HeaderEntry> = {};
  let offset = 0;
  for (const name of names) {
    const size = tensors[name].data.length * width;
    header[name] = { dtype, shape: tensors[name].shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad the header to a multiple of 8 bytes with spaces, as the reference writer does.
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  bytes.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  const scratch = new DataView(new ArrayBuffer(4));
  for (const name of names) {
    const data = tensors[name].data;
    for (let i = 0; i < data.length; i++) {
      if (dtype === 'F32') view.setFloat32(at + 4 * i, data[i], true);
      else if (dtype === 'BF16') {
        scratch.setFloat32(0, data[i]);
        // Round to nearest even on the dropped 16 bits.
        const bits = scratch.getUint32(0);
        const rounded = (bits + 0x7fff + ((bits >> 16) & 1)) >>> 16;
        view.setUint16(at + 2 * i, rounded & 0xffff, true);
      } else view.setUint16(at + 2 * i, floatToHalf(data[i]), true);
    }
    at += data.length * width;
  }
  return bytes;
}

/** Float to IEEE half (round to nearest, finite inputs in half range). */
export function floatToHalf(value: number): number {
  const scratch = new DataView(new ArrayBuffer(4));
  scratch.setFloat32(0, value);
  const bits = scratch.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - exponent;
    const half = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (half + (rest > halfway || (rest === halfway && half & 1) ? 1 : 0));
  }
  if (exponent >= 31) return sign | 0x7c00;
  const rest = mantissa & 0x1fff;
  let out = sign | (exponent << 10) | (mantissa >> 13);
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out += 1;
  return out;
}

export async function writeSafetensors(
  path: string,
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
  dtype: 'F32' | 'F16' | 'BF16' = 'F32',
): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, dtype));
}
