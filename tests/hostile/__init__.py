"""Hostile files and text: every reader fails with leanformers' documented errors, nothing runs, nothing leaks."""
