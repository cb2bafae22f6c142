// bufferutil ships prebuilt N-API addons in its npm tarball (prebuilds/, node-gyp-build);
// it falls back to JavaScript silently when the addon does not load: say which one ran.
const bufferutil = require('bufferutil');
const data = Buffer.from('websocket frame');
const key = Buffer.from([1, 2, 3, 4]);
const masked = Buffer.alloc(data.length);
bufferutil.mask(data, key, masked, 0, data.length);
bufferutil.unmask(masked, key);
const native = /\[native code\]/.test(String(bufferutil.mask));
console.log(`${masked.toString()} native=${native}`);
