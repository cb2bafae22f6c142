// Type-checks a snippet with the typescript API: it reads lib.d.ts from beside itself (__dirname).
const ts = require('typescript');
const source = 'const n: number = "five";\nconst xs: string[] = [1, 2].map((x) => x * 2);\n';
const options = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022 };
const host = ts.createCompilerHost(options);
const read = host.getSourceFile;
host.getSourceFile = (file, lang) =>
  file === 'main.ts' ? ts.createSourceFile(file, source, lang) : read.call(host, file, lang);
host.fileExists = ((exists) => (f) => f === 'main.ts' || exists(f))(host.fileExists);
const program = ts.createProgram(['main.ts'], options, host);
for (const d of ts.getPreEmitDiagnostics(program)) {
  console.log(`TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
}
