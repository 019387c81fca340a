"""Tags: rule tags defined by operators and behaviour tags computed by the build.

Rule tags live in :mod:`patron.tags.rules` (the language) and :mod:`patron.tags.service` (stored
definitions); behaviour tags in :mod:`patron.tags.behaviour`. Import from the submodules: this package
imports nothing, so registering the tables (:mod:`patron.tags.models`) does not pull in the warehouse stack.
"""
