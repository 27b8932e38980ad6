# The same single stage on node:20-alpine: a smaller base, but devDependencies still ship.
# The Node.js major (20, the article's): `make bench NODE=24` builds on Node 24.
ARG NODE=20
FROM node:${NODE}-alpine
WORKDIR /app
COPY package*.json ./
RUN npm install
COPY . .
RUN npm run build
EXPOSE 3000
CMD ["node", "dist/index.js"]
