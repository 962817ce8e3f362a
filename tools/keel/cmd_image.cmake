set(KEEL_CLI_LIBS_image keel_image)
