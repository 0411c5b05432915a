"""The command line: parse, call the library, render (STYLE H1). Only here do errors
become exit codes."""
