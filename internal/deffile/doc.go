// Package deffile parses Apptainer definition files ("def files", the input
// of `launch build OUT DEF`) into plain data, the way Apptainer reads them,
// so that files written for Apptainer mean the same thing here.
//
// It owns:
//   - the grammar: headers (Bootstrap, From, Stage, ... case-insensitive,
//     one table in keywords.go), sections (%post, %files, %labels, the SCIF
//     %app* sections, ...), comments and blank lines, multi-stage files;
//   - templating: {{ VAR }} placeholders filled from --build-arg K=V,
//     --build-arg-file F and the %arguments defaults of each stage;
//   - the bootstrap agent table: which agents launch builds from and which
//     Apptainer agents it does not (the parser names the agent, the builder
//     acts on it);
//   - rendering a parsed definition back to text, and the text Apptainer
//     stores in the SIF and in /.singularity.d/Singularity.
//
// It must not touch the file system beyond reading the definition file and
// the build-arg file (ReadFile, Load, BuildArgs), and it runs nothing: %setup,
// %post and friends are returned as text for the builder.
//
// Every problem is reported as an *Error, one line "FILE:LINE: what", that
// the CLI prints as it is; things Apptainer accepts but that deserve a word
// (a header given twice, extra words on a %files line, Fingerprints that are
// not verified) come back as Warnings, and build arguments that no
// placeholder used as Definition.UnusedArgs.
//
// Where Apptainer's own parser behaves in a way no working file can rely on
// (a %files section with a stray argument that Apptainer silently skips, an
// indented section line), this package reports an error instead of guessing;
// each such place says so in its comment.
package deffile
