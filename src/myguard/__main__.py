from myguard.cli import main

raise SystemExit(main())
