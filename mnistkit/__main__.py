from mnistkit.cli import main

raise SystemExit(main())
