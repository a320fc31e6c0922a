"""Leaderboards, plots and reports built from trial records only (never imports training code)."""
