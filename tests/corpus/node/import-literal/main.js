// CommonJS loading an ESM-only package with import() of a literal specifier.
import('chalk').then(({ default: chalk }) => {
  console.log(`chalk loaded: ${chalk.bold('bold')} at level ${chalk.level}`);
});
