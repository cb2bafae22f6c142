//! Reading programs: `read` parses ELF headers (goblin), `inspect` says what an executable
//! needs at run time (interpreter, libraries, run paths, platform), `goinfo` decodes Go's
//! build info, `interpreters` recognises language runtimes that cannot run alone. Reads
//! bytes only; never runs what it reads.

pub mod goinfo;
pub mod inspect;
pub mod interpreters;
pub mod read;
