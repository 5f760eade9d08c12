"""Tools around the program: offline plan, mock engine."""
