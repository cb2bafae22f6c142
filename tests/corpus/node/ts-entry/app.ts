// A TypeScript entry file, validated with zod.
import { z } from 'zod';

interface Greeting {
  who: string;
  times: number;
}

const Schema = z.object({ who: z.string().min(1), times: z.number().int().positive() });
const greeting: Greeting = Schema.parse({ who: 'typescript', times: 2 });
const bad = Schema.safeParse({ who: '', times: 0 });
console.log(`hello ${greeting.who} x${greeting.times}; rejected ${bad.success ? 0 : bad.error.issues.length} issues`);
