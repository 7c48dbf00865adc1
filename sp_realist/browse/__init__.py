"""Reading and coding interactively: ``sp-realist browse``.

* :mod:`.reading`  what the reader shows (a source index to filter, one source's text with its segments,
  codings, memos, appraisals and evidence; the unit under the cursor; the next coding of a code) and
  :func:`.reading.visible_codings`, the one rule deciding which codings the current user may see;
* :mod:`.session`  the coding actions of a reading session (apply, remove, recode, memo, appraise, link),
  each done through the library's own functions and recording its inverse, for undo / redo;
* :mod:`.app`      the Textual interface (imported only by ``browse``: Textual is not loaded otherwise);
* :mod:`.serve`    ``browse --serve``: the same interface in a browser on localhost (textual-serve).

Nothing here runs SQL of its own beyond reading; every write goes through the areas' functions.
"""
