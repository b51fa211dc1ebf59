"""Conda environments on disk: where they are, what they hold, and the engines that build them."""
