// moment loads a locale with a computed require('./locale/' + name) inside node_modules, and
// falls back to English without a word when that fails.
const moment = require('moment');
moment.locale('fr');
console.log(`${moment.locale()}: ${moment.utc('2024-03-05').format('dddd D MMMM YYYY')}`);
