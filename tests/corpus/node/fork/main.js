// child_process.fork of a script beside the entry; the child uses a package and answers.
const { fork } = require('child_process');
const path = require('path');
const child = fork(path.join(__dirname, 'child.js'), ['2 days']);
child.on('message', (m) => {
  console.log(`child says ${m}`);
  child.disconnect();
});
child.on('exit', (code) => { if (code) process.exit(code); });
