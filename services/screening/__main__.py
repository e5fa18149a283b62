from services.screening.app import main

main()
