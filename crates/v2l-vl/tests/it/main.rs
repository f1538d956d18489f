mod conse;
