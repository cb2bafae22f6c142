"""Pillow draws an image and round-trips it through PNG, JPEG and WebP (the codecs' libraries
are vendored in pillow.libs)."""

import io

import PIL
from PIL import Image, ImageDraw, features

img = Image.new("RGB", (64, 32), (255, 255, 255))
ImageDraw.Draw(img).rectangle((0, 0, 31, 31), fill=(255, 0, 0))
decoded = []
for fmt in ("PNG", "JPEG", "WEBP"):
    buf = io.BytesIO()
    img.save(buf, fmt)
    back = Image.open(io.BytesIO(buf.getvalue()))
    back.load()
    decoded.append(f"{back.format} {back.size[0]}x{back.size[1]} {back.mode}")
    if fmt == "PNG":
        pixel = back.getpixel((1, 1))
print(f"{'; '.join(decoded)}; png pixel {pixel}")
print(f"Pillow {PIL.__version__} jpeg {features.version('jpg')} webp {features.check('webp')} freetype {features.check('freetype2')}")
