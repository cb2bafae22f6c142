const sharp = require('sharp');
sharp({ create: { width: 4, height: 3, channels: 3, background: '#ff0000' } }).png().toBuffer()
  .then(b => sharp(b).metadata()).then(m => console.log('sharp made', m.format, m.width + 'x' + m.height, 'vips', sharp.versions.vips));
