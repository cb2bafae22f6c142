var xs = [1, 2, 3].map(function (x) { return x * 10 });
console.log("otto says " + JSON.stringify({xs: xs}));
