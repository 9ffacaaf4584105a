/** The provider version; SDKs and the plugin info report it. Kept equal to package.json by a unit test. */
export const version = '0.1.0';
