import { pascalCase } from 'change-case';
export default (s) => pascalCase(s);
