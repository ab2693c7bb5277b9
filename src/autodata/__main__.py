from autodata.cli import main

main()
