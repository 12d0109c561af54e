"""Reports: the papers' tables from run folders, and plots."""
