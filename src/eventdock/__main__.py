from eventdock.cli import main

main()
