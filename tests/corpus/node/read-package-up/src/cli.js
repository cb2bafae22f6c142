#!/usr/bin/env node
// Prints its own name, version and description, found by a package-up lookup from its location.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPackageUpSync } from 'read-package-up';

const here = dirname(fileURLToPath(import.meta.url));
const { packageJson } = readPackageUpSync({ cwd: here });
console.log(`${packageJson.name} ${packageJson.version}: ${packageJson.description}`);
