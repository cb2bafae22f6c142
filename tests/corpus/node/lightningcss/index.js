// Minifies CSS with lightningcss's native addon (a platform package npm picks at install).
const { transform } = require('lightningcss');
const { code } = transform({ filename: 'a.css', code: Buffer.from('.a { color: #ff0000; margin: 0px 0px; }'), minify: true });
console.log(`lightningcss on ${process.arch}: ${code}`);
