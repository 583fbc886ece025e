from include.sandbox.server import main

main()
