// Writes a snapshot of /tmp and asks for the changes since: @parcel/watcher's native addon.
const fs = require('fs');
const watcher = require('@parcel/watcher');
(async () => {
  const snap = '/tmp/corpus-watcher.snapshot';
  await watcher.writeSnapshot('/tmp', snap);
  fs.writeFileSync('/tmp/corpus-watched.txt', 'x');
  const events = await watcher.getEventsSince('/tmp', snap);
  const created = events.some((e) => e.type === 'create' && e.path.endsWith('corpus-watched.txt'));
  console.log(`watcher saw the new file: ${created}`);
})();
