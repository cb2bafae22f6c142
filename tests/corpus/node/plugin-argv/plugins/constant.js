import { constantCase } from 'change-case';
export default (s) => constantCase(s);
