from fdbuild.cli.main import main

raise SystemExit(main())
