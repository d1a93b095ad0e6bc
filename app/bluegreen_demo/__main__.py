"""`python -m bluegreen_demo`: serve until SIGTERM."""

from bluegreen_demo.server import main

raise SystemExit(main())
