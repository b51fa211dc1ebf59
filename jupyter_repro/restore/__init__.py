"""Rebuilding an environment: plan, engines, pip, disk claim and cleanup, channel policy."""
