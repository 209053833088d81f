"""Pure settlement rules: no I/O, no framework imports. Everything here is a function of
facts and tariffs, tested by tables of worked examples."""
