/**
 * Draws the app icon (the same picture as src-renderer/public/favicon.svg: three nodes and two wires on a
 * blue rounded square) as a 1024x1024 PNG for electron-builder, which derives the macOS and Windows icons
 * from it. Generated at packaging time, so no binary image is kept in the repository.
 *
 *   npx tsx build-resources/make-icon.ts [out.png]
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const SIZE = 1024;
const SAMPLES = 4; // per axis, for anti-aliased edges
const BLUE = [0x19, 0x71, 0xc2] as const;

type Point = [number, number];
const circles: [Point, number][] = [
  [[18, 20], 7],
  [[46, 32], 7],
  [[18, 44], 7],
];
const wires: [Point, Point][] = [
  [
    [24, 22],
    [40, 30],
  ],
  [
    [24, 42],
    [40, 34],
  ],
];

function insideRoundedSquare(x: number, y: number, size = 64, radius = 14): boolean {
  const cx = Math.min(Math.max(x, radius), size - radius);
  const cy = Math.min(Math.max(y, radius), size - radius);
  return x >= 0 && y >= 0 && x <= size && y <= size && (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2;
}

function distanceToSegment(x: number, y: number, [a, b]: [Point, Point]): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const t = Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (a[0] + t * dx), y - (a[1] + t * dy));
}

/** Colour at a point in the 64x64 picture: [r, g, b, a]. */
function shade(x: number, y: number): [number, number, number, number] {
  if (!insideRoundedSquare(x, y)) return [0, 0, 0, 0];
  const white =
    circles.some(([[cx, cy], r]) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r) ||
    wires.some((w) => distanceToSegment(x, y, w) <= 2);
  return white ? [255, 255, 255, 255] : [BLUE[0], BLUE[1], BLUE[2], 255];
}

export function drawIcon(size = SIZE): Buffer {
  const rows: Buffer[] = [];
  const scale = 64 / size;
  for (let py = 0; py < size; py++) {
    const row = Buffer.alloc(1 + size * 4); // filter byte 0, then RGBA
    for (let px = 0; px < size; px++) {
      const sum = [0, 0, 0, 0];
      for (let sy = 0; sy < SAMPLES; sy++) {
        for (let sx = 0; sx < SAMPLES; sx++) {
          const [r, g, b, a] = shade(
            (px + (sx + 0.5) / SAMPLES) * scale,
            (py + (sy + 0.5) / SAMPLES) * scale,
          );
          sum[0] += r * a;
          sum[1] += g * a;
          sum[2] += b * a;
          sum[3] += a;
        }
      }
      const alpha = sum[3] / (SAMPLES * SAMPLES);
      const at = 1 + px * 4;
      if (sum[3] > 0) {
        row[at] = Math.round(sum[0] / sum[3]);
        row[at + 1] = Math.round(sum[1] / sum[3]);
        row[at + 2] = Math.round(sum[2] / sum[3]);
      }
      row[at + 3] = Math.round(alpha);
    }
    rows.push(row);
  }
  return encodePng(size, size, Buffer.concat(rows));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function encodePng(width: number, height: number, filteredRgba: Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(filteredRgba, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? fileURLToPath(new URL('./icon.png', import.meta.url));
  writeFileSync(out, drawIcon());
  process.stdout.write(`Wrote ${out}\n`);
}
