// An npm workspace member that depends on another member (hoisted to the root node_modules).
const greet = require('@corpus/greet');
console.log(greet('workspace'));
