# Rasterises public/favicon.svg's shapes (a rounded square, a speech bubble, three dots) into PNG
# icons, supersampled 4x4, with no imaging library.
import struct, zlib, sys

BLUE = (0x4f, 0x46, 0xe5)
WHITE = (0xff, 0xff, 0xff)

def in_round_rect(x, y, x0, y0, x1, y1, r):
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

def in_triangle(x, y, a, b, c):
    def side(p, q):
        return (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1])
    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    neg = d1 < 0 or d2 < 0 or d3 < 0
    pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (neg and pos)

def colour(x, y, maskable):
    """The colour at (x, y) in the SVG's 64-unit space, or None (transparent)."""
    if maskable:
        # Full bleed; the drawing shrunk to the central safe zone (80 %).
        x, y = (x - 32) / 0.8 + 32, (y - 32) / 0.8 + 32
        base = BLUE
    else:
        base = BLUE if in_round_rect(x, y, 0, 0, 64, 64, 14) else None
    if base is None:
        return None
    bubble = in_round_rect(x, y, 16, 14, 48, 40, 6) or in_triangle(x, y, (30, 40), (21, 48), (21, 39))
    if not bubble:
        return base
    for cx in (25, 32, 39):
        if (x - cx) ** 2 + (y - 27) ** 2 <= 2.5 ** 2:
            return BLUE
    return WHITE

def render(size, maskable):
    rows = bytearray()
    n = 4
    for py in range(size):
        rows.append(0)
        for px in range(size):
            r = g = b = a = 0
            for sy in range(n):
                for sx in range(n):
                    x = (px + (sx + 0.5) / n) * 64 / size
                    y = (py + (sy + 0.5) / n) * 64 / size
                    c = colour(x, y, maskable)
                    if c is not None:
                        r += c[0]; g += c[1]; b += c[2]; a += 255
            k = n * n
            covered = a // 255
            if covered:
                rows += bytes((r // covered, g // covered, b // covered, a // k))
            else:
                rows += b"\0\0\0\0"
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))

out = sys.argv[1]
for name, size, maskable in [("icon-192.png", 192, False), ("icon-512.png", 512, False),
                             ("icon-maskable-512.png", 512, True), ("apple-touch-icon.png", 180, True)]:
    open(f"{out}/{name}", "wb").write(render(size, maskable))
    print(name)
