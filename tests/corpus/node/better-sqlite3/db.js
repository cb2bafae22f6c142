// better-sqlite3: a node-gyp addon built from source, loaded through `bindings`.
const Database = require('better-sqlite3');
const db = new Database(':memory:');
db.exec('create table notes (body text)');
db.prepare('insert into notes values (?)').run('stored in sqlite');
const row = db.prepare('select body, count(*) as n from notes').get();
console.log(`${row.body} (${row.n} row)`);
