"""Tiny helpers I use to keep notes for the writing twin."""
